OMP_NUM_THREADS=1 PYTHONPATH=src python bench/bench_active_abstain.py --seeds 0 1 2 3 4
