"""A small real project for the `tagwise serve` tests: the bundled GoEmotions sample split into a
labeled train slice, an unlabeled pool, dev and test, embedded with the fast `hashing:256` encoder."""
import threading
import time
from pathlib import Path

from tagwise.project import Project

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "goemotions-sample"


def make_project(root: Path, n_train: int = 240, n_pool: int = 200, n_dev: int = 150, n_test: int = 150,
                 extra_rows: list[str] = ()) -> Project:
    """``extra_rows``: raw TSV lines (text, labels, id) appended to the unlabeled pool file."""
    root.mkdir(parents=True, exist_ok=True)
    train = (SAMPLE / "train.tsv").read_text(encoding="utf-8").splitlines()
    test = (SAMPLE / "test.tsv").read_text(encoding="utf-8").splitlines()
    files = {"train": train[:n_train], "unlabeled": list(extra_rows) + train[n_train:n_train + n_pool],
             "dev": test[:n_dev], "test": test[n_dev:n_dev + n_test]}
    for split, rows in files.items():
        (root / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    spec = (SAMPLE / "spec.yaml").read_text(encoding="utf-8")
    spec = spec.replace("splits: {train: train.tsv, test: test.tsv}",
                        "splits: {train: train.tsv, unlabeled: unlabeled.tsv, dev: dev.tsv, test: test.tsv}")
    spec = spec.replace("names_file: labels.txt", f"names_file: {SAMPLE / 'labels.txt'}")
    (root / "spec.yaml").write_text(spec, encoding="utf-8")
    project = Project.init(root / "project")
    project.add_source(root / "spec.yaml")
    project.store.set_meta("encoder", "hashing:256")
    return project


class Server:
    """A real uvicorn server on a loopback port, in a thread (``stop()`` ends it)."""

    def __init__(self, app, port: int):
        import uvicorn

        self.port, self.url = port, f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(400):
            if self.server.started:
                break
            time.sleep(0.05)
        assert self.server.started

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)
