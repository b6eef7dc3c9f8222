"""This browser session's training job, and handing its finished models to the session's model list.

The Trainer page keeps one `TrainingJob` in `st.session_state[JOB]`. A job's thread cannot touch
session state, so the models it finishes are registered (`register_session_model`) by whichever
script run notices them first: the Trainer page on every poll, and any page whose sidebar calls
`register_finished_models()`, so a run that ends while the person is on another page appears in
that page's sidebar at its next rerun.
"""

from __future__ import annotations

import time

import streamlit as st

from .jobs import TrainingJob
from .models import register_session_model

JOB = "trainer_job"  # session_state: the TrainingJob of this session (one at a time)
REGISTERED = "trainer_registered"  # session_state: "job uid:run index" -> session model key


def current_job() -> TrainingJob | None:
    return st.session_state.get(JOB)


def register_finished_models() -> int:
    """Register every finished, not yet registered run of this session's job; returns how many."""
    job = current_job()
    if job is None:
        return 0
    done = st.session_state.setdefault(REGISTERED, {})
    new = 0
    for i, result in enumerate(job.results):
        key = f"{job.uid}:{i}"
        if key in done:
            continue
        when = time.strftime("%H:%M", time.localtime(job.created))
        ref = register_session_model(result.model, f"{result.spec.label()} (trained here {when})")
        done[key] = ref.key
        new += 1
    return new
