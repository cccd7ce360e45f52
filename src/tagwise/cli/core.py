"""Core commands: init, add-source, sources, embed, train, predict, evaluate, report."""
from __future__ import annotations

import json
import resource
import sys
import time

from ..project import Project


def _print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def cmd_init(args) -> int:
    project = Project.init(args.project, taxonomy=args.taxonomy, exist_ok=args.exist_ok)
    print(f"created project {project.path}" + (f" with taxonomy {args.taxonomy}" if args.taxonomy else ""))
    return 0


def cmd_add_source(args) -> int:
    project = Project.open(args.project)
    summary = project.add_source(args.spec, replace=args.replace)
    splits = ", ".join(f"{k}: {v}" for k, v in summary["splits"].items())
    print(f"added source {summary['name']!r}: {summary['n_examples']} examples ({splits})"
          + (f"; new labels: {len(summary['new_labels'])}" if summary["new_labels"] else "")
          + (f"; skipped {summary['skipped_empty']} empty texts" if summary["skipped_empty"] else ""))
    return 0


def cmd_sources(args) -> int:
    project = Project.open(args.project)
    counts = project.store.count()
    out = [{"name": s["name"], "n_examples": s["n_examples"], "annotated_labels": len(s["annotated"]),
            "splits": {k.split("/", 1)[1]: v for k, v in counts.items() if k.split("/", 1)[0] == s["name"]}}
           for s in project.store.sources()]
    if args.json:
        _print_json({"sources": out, "labels": list(project.labels.names)})
    else:
        for s in out:
            print(f"{s['name']}: {s['n_examples']} examples, {s['annotated_labels']} labels, splits {s['splits']}")
        print(f"taxonomy: {len(project.labels)} labels")
    return 0


def cmd_embed(args) -> int:
    project = Project.open(args.project)
    stats = project.embed(args.encoder)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"embedded {stats.n_texts} texts ({stats.n_unique} unique) with {project.default_encoder}: "
          f"{stats.n_encoded} encoded, {stats.n_unique - stats.n_encoded} from cache, "
          f"{stats.seconds:.1f}s, peak RSS {peak_mb:.0f} MB")
    return 0


def cmd_train(args) -> int:
    from ..learn.train import train_project

    project = Project.open(args.project)
    params = json.loads(args.params) if args.params else None
    encoder = args.encoder
    if getattr(args, "fine_tune", False):
        from ..learn.finetune import finetune_project_encoder

        tuned = finetune_project_encoder(project, split=args.split, base=args.base_model,
                                         max_steps=args.fine_tune_steps)
        encoder = tuned["encoder"]
        print(f"fine-tuned {args.base_model} for {tuned['steps']} steps on {tuned['pairs']} pairs in "
              f"{tuned['seconds']:.1f}s (final loss {tuned['final_loss']:.3f}); encoder {encoder}")
    result = train_project(project, model=args.model, split=args.split, encoder=encoder, params=params)
    print(f"trained {result['model']} on {result['n_examples']} examples, {result['n_labels']} labels "
          f"in {result['seconds']:.1f}s; it is now the current model")
    if result.get("sub_labels"):
        used, off = result["sub_labels"]["used"], result["sub_labels"]["off"]
        print(f"sub-labels: scored with them: {', '.join(used) or 'none'}"
              + (f"; switched off (the labeled examples rank better without): {', '.join(off)}" if off else ""))
    if "pseudo_labels" in result:
        pl = result["pseudo_labels"]
        if "soft_cells" in pl:  # co-training: every pool row gets a soft score per label
            print(f"co-training: soft pseudo-labels on {pl['examples']} of {pl['unlabeled_pool']} unlabeled "
                  f"examples ({pl['soft_cells']} cells; {pl['positive']} confident positive, "
                  f"{pl['negative']} negative)")
        else:
            print(f"used {pl['positive']} positive and {pl['negative']} negative pseudo-labels on "
                  f"{pl['examples']} of {pl['unlabeled_pool']} unlabeled examples")
    return 0


def cmd_predict(args) -> int:
    from ..serve.predict import predict_file

    project = Project.open(args.project)
    t0 = time.perf_counter()
    header = not args.no_header
    as_col = lambda c: int(c) if c is not None and not header else c  # noqa: E731 positions without a header
    n = predict_file(project, args.input, args.out, text_column=as_col(args.text_column),
                     id_column=as_col(args.id_column), fmt=args.format, model=args.model, header=header)
    print(f"wrote {n} predictions to {args.out} in {time.perf_counter() - t0:.1f}s")
    return 0


def cmd_evaluate(args) -> int:
    from ..evaluate.evaluate import evaluate_project

    if getattr(args, "transfer", False):  # train-on-A/test-on-B matrix (cli/taxonomy.py)
        from .taxonomy import cmd_evaluate_transfer

        return cmd_evaluate_transfer(args)
    project = Project.open(args.project)
    report = evaluate_project(project, split=args.split, model=args.model, source=args.source)
    if args.json:
        _print_json(report)
        return 0
    print(f"{report['split']}: {report['n_examples']} examples, model {report['model']}")
    print(f"  micro-F1 {report['micro_f1']:.4f}  macro-F1 {report['macro_f1']:.4f}  "
          f"macro-AP {report['macro_ap']:.4f}  ECE {report['ece']:.4f}")
    print(f"  {'label':<24}{'prec':>7}{'rec':>7}{'f1':>7}{'support':>9}")
    for name, m in report["per_label"].items():
        print(f"  {name:<24}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}{m['support']:>9}")
    return 0


def cmd_report(args) -> int:
    from ..evaluate.report import write_report

    project = Project.open(args.project)
    path = write_report(project, split=args.split)
    print(f"report written to {path.resolve()}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("init", help="create a project folder")
    p.add_argument("project")
    p.add_argument("--taxonomy", help="YAML file declaring the target labels (fixes the label set)")
    p.add_argument("--exist-ok", action="store_true", help="do nothing if the project exists")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("add-source", help="register and ingest one source from a YAML spec")
    p.add_argument("project")
    p.add_argument("spec")
    p.add_argument("--replace", action="store_true", help="re-ingest a source that already exists")
    p.set_defaults(handler=cmd_add_source)

    p = sub.add_parser("sources", help="list sources, splits and the taxonomy size")
    p.add_argument("project")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_sources)

    p = sub.add_parser("embed", help="embed every example (cached by content)")
    p.add_argument("project")
    p.add_argument("--encoder", default=None, help="use (default) | hashing[:dim] | st:<model-or-path>")
    p.set_defaults(handler=cmd_embed)

    p = sub.add_parser("train", help="train a multi-label head on the train split")
    p.add_argument("project")
    p.add_argument("--model", default="linear", help="head to train (default: linear)")
    p.add_argument("--split", default="train")
    p.add_argument("--encoder", default=None, help="defaults to the encoder of the last `embed`")
    p.add_argument("--params", default=None, help='JSON of head parameters, e.g. \'{"C": 2.0}\'')
    p.add_argument("--zero-shot", dest="model", action="store_const", const="zero-shot",
                   help="no labels needed: label names (+ taxonomy descriptions/examples/sub_labels) only")
    p.add_argument("--few-shot", dest="model", action="store_const", const="few-shot",
                   help="few labeled examples: linear head shrunk towards the zero-shot prior")
    p.add_argument("--semi-supervised", dest="model", action="store_const", const="semi-supervised",
                   help="few-shot head self-trained on the project's unlabeled examples")
    p.add_argument("--fine-tune", action="store_true",
                   help="torch extra: first fine-tune a sentence-transformers body on contrastive pairs of the "
                        "labeled examples (SetFit-style), saved in PROJECT/encoders/, then train the head on it")
    p.add_argument("--fine-tune-steps", type=int, default=100, help="most optimisation steps (default 100)")
    p.add_argument("--base-model", default="all-minilm-l6-v2",
                   help="body to fine-tune: the bundled all-minilm-l6-v2 or any sentence-transformers name/path")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("predict", help="predict labels for a csv/tsv/jsonl/parquet file")
    p.add_argument("project")
    p.add_argument("input")
    p.add_argument("--out", required=True, help="output JSONL: {id, labels, scores} per row")
    p.add_argument("--text-column", default="text")
    p.add_argument("--id-column", default=None)
    p.add_argument("--format", default=None, help="csv | tsv | jsonl | parquet (default: by extension)")
    p.add_argument("--no-header", action="store_true", help="csv/tsv without a header: columns are 0-based positions")
    p.add_argument("--model", default=None, help="model name (default: current)")
    p.set_defaults(handler=cmd_predict)

    p = sub.add_parser("evaluate", help="metrics of the current model on a split")
    p.add_argument("project")
    p.add_argument("--split", default="test")
    p.add_argument("--source", default=None, help="only this source's examples")
    p.add_argument("--model", default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--transfer", action="store_true", help="train on each source, test on every other: "
                   "matrix, leave-one-source-out, per-language macro-F1")
    p.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser("report", help="write PROJECT/report.html with plots")
    p.add_argument("project")
    p.add_argument("--split", default="test", help="split whose latest evaluation is shown")
    p.set_defaults(handler=cmd_report)
