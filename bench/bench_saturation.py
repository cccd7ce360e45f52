"""How far labels go on SemEval-2018 E-c: the active-learning head trained on ALL training labels.

Reproduces the README's "SemEval is close to saturation" figures with a committed script (issue 16:
no README figure without a results file): test macro-F1 of the head that bench_active.py trains
(``FewShotClassifier`` with the zero-shot label-name prior, cross-validated cuts as ``tagwise train
--few-shot``) and of the full-data head ``MultiLabelLinear``, with per-label F1, seeds 0-2 (the
seed moves only the CV folds). The README's "MLP with dev-tuned cuts" figure is not reproduced
(a dev-tuned peer; issue 16 removes it).

    OMP_NUM_THREADS=1 PYTHONPATH=src python bench/bench_saturation.py [--encoder use|st:all-minilm-l6-v2]
Writes bench/results/saturation_semeval2018[_<encoder>].json.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fewshot_data import CACHE, load_dataset  # noqa: E402
from common import save_results  # noqa: E402

from tagwise.encoders import embed_texts  # noqa: E402
from tagwise.evaluate.metrics import multilabel_report  # noqa: E402
from tagwise.learn.fewshot import FewShotClassifier  # noqa: E402
from tagwise.learn.linear import MultiLabelLinear  # noqa: E402
from tagwise.learn.lowlabel import fit_zero_shot  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder", default="use")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = ap.parse_args()
    names, data, enc = load_dataset("semeval2018", encoder=args.encoder)
    tr, te = data["train"], data["test"]
    zs = fit_zero_shot(names, tr.X, lambda t: embed_texts(list(t), enc, CACHE, progress=False)[0])
    models = {
        "fewshot_head_cv_cuts": lambda s: FewShotClassifier(random_state=s).fit(tr.X, tr.Y, zeroshot=zs, X_corpus=tr.X),
        "multilabel_linear": lambda s: MultiLabelLinear(random_state=s).fit(tr.X, tr.Y),
    }
    out = {"dataset": "semeval2018", "encoder": args.encoder, "n_train": int(len(tr.Y)), "seeds": args.seeds}
    for name, make in models.items():
        f1s, per_label, secs = [], [], []
        for s in args.seeds:
            t0 = time.perf_counter()
            m = make(s)
            secs.append(time.perf_counter() - t0)
            rep = multilabel_report(te.Y, m.predict(te.X), None, names)
            f1s.append(rep["macro_f1"])
            per_label.append([rep["per_label"][n]["f1"] for n in names])
        pl = np.mean(per_label, axis=0)
        out[name] = {"macro_f1": {"mean": round(float(np.mean(f1s)), 4), "sd": round(float(np.std(f1s, ddof=1)), 4),
                                  "per_seed": [round(x, 4) for x in f1s]},
                     "per_label_f1_mean": {n: round(float(v), 3) for n, v in zip(names, pl)},
                     "fit_seconds_mean": round(float(np.mean(secs)), 2)}
        print(f"{name}: macro-F1 {np.mean(f1s):.4f} ± {np.std(f1s, ddof=1):.4f}; "
              + ", ".join(f"{n} {v:.2f}" for n, v in zip(names, pl)), flush=True)
    suffix = "" if args.encoder == "use" else "_" + args.encoder.replace("st:", "").replace("-", "_")
    print(f"results -> {save_results('saturation_semeval2018' + suffix, out)}")


if __name__ == "__main__":
    main()
