"""Checkpoint metadata for tests: what a model measured on a data set says about itself."""

from __future__ import annotations

from vaeviz import CheckpointMeta, Curves, Metrics, TrainConfig, TrainingRun


def measured(model, *, dataset: str = "mnist", metrics: Metrics | dict | None = None, epochs: list[dict] | None = None,
             steps: list[dict] | None = None, train_images: int | None = None, train_epochs: int = 1) -> CheckpointMeta:
    """`model.meta` as after a run: on `dataset`, with these metrics and curves."""
    if isinstance(metrics, dict):
        metrics = Metrics.from_dict(metrics)
    run = TrainingRun(TrainConfig(epochs=train_epochs), train_images, "cpu")
    return model.meta.with_run(dataset=dataset, train=run, metrics=metrics or Metrics(),
                               curves=Curves(tuple(steps or ()), tuple(epochs or ())))
