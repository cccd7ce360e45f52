"""tagwise: several messy, partly labeled, multilingual datasets -> one reliable multi-label classifier.

The names a notebook needs::

    from tagwise import Project, train, evaluate, predict_texts, audit_project, suggest, transfer_evaluation
    p = Project.init("myproj"); p.add_source("spec.yaml"); p.embed()
    train(p)                                   # mode chosen from the data ("auto")
    evaluate(p, split="test")["macro_f1"]
    suggest(p, budget=50)                      # the unlabeled texts worth labeling next
    audit_project(p)                           # likely label errors, with an error estimate
    transfer_evaluation(p)                     # each source's labels predicted from the others

Estimators (scikit-learn conventions, any embeddings): ``MultiLabelLinear``, ``FewShotClassifier``,
``ZeroShotClassifier``, ``CoTrainingClassifier``, ``MultiSourceLinear``. Label quality (cleanlab-style,
pure functions over ``labels`` + ``pred_probs``): ``find_label_issues``, ``label_quality_scores``.
"""
from __future__ import annotations

from .audit.label_quality import find_label_issues, label_quality_scores
from .learn.cotrain import CoTrainingClassifier
from .learn.fewshot import FewShotClassifier
from .learn.linear import MultiLabelLinear
from .learn.multisource import MultiSourceLinear
from .learn.persist import load_model, save_model
from .learn.zeroshot import ZeroShotClassifier
from .project import Project
from .types import Examples, LabelSpace, TagwiseError
from .workflows.audit import audit_project
from .workflows.evaluate import evaluate
from .workflows.predict import predict_texts
from .workflows.suggest import suggest
from .workflows.train import train
from .workflows.transfer import transfer_evaluation

__all__ = ["CoTrainingClassifier", "Examples", "FewShotClassifier", "LabelSpace", "MultiLabelLinear",
           "MultiSourceLinear", "Project", "TagwiseError", "ZeroShotClassifier", "audit_project", "evaluate",
           "find_label_issues", "label_quality_scores", "load_model", "predict_texts", "save_model", "suggest", "train",
           "transfer_evaluation"]
