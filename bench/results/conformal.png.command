OMP_NUM_THREADS=1 PYTHONPATH=src python bench/bench_conformal.py --reps 100 --mapie-reps 10
