"""The application layer: project-level work that the CLI and the HTTP API both call.

Each function takes an open ``tagwise.project.Project`` and returns plain dicts (or writes files);
the CLI only parses arguments and prints. The estimators and array functions they use live in
``learn/``, ``audit/``, ``select/`` and ``evaluate/``.

- ``sources``: what each source holds
- ``train``: gather training data, choose or run a mode, save the model
- ``models``: load a saved model safely
- ``predict``: texts or files in, labels and scores out (each row in its source's mode)
- ``evaluate``: metrics of a model on a split
- ``transfer``: the train-on-A / test-on-B matrix
- ``audit``: label issues, the issues file and the audit run
- ``corrections``: apply / undo / list accepted label fixes
- ``suggest``: what to label next
- ``taxonomy``: the label tree and suggested mappings
- ``report``: the HTML report
- ``labels``: annotations people give (import / export, the label and review queues)
- ``retrain``: background retrain jobs with before/after figures (the web app)
- ``weak``: labeling functions' votes, their analysis, soft targets for ``train --weak``
- ``annotators``: per-annotator sources, consensus targets, annotator quality and agreement
"""
