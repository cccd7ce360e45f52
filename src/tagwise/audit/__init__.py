"""Label audit: out-of-fold cross-fitting, typed label issues, conflicting duplicates, outliers."""
from .core import AuditResult, audit_arrays, check_audit_inputs
from .duplicates import conflicting_duplicates, outlier_scores
from ..text import normalize_text
from ..neighbors import nearest_neighbors, neighbor_label_votes
from .label_quality import (LabelIssues, blend_evidence, cell_issue_scores, find_label_issues,
                            label_quality_scores, per_label_thresholds, worst_of_views)
from ..folds import stratified_folds
from .oof import label_dependency_proba, out_of_fold_proba, ridge_out_of_fold_proba

__all__ = ["AuditResult", "LabelIssues", "audit_arrays", "blend_evidence", "cell_issue_scores",
           "check_audit_inputs", "conflicting_duplicates", "find_label_issues", "label_dependency_proba",
           "label_quality_scores", "nearest_neighbors", "neighbor_label_votes", "normalize_text",
           "out_of_fold_proba", "outlier_scores", "per_label_thresholds", "ridge_out_of_fold_proba",
           "stratified_folds", "worst_of_views"]
