python bench/bench_conformal.py --reps 100 --mapie-reps 10 --datasets goemotions reuters semeval2018
