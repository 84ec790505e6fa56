"""Glue for "what changed": score one window with two scorers and hand the plain results to
`leadscore.lifecycle.changes.compare_scores` (which holds the logic)."""

from __future__ import annotations

import pandas as pd

from leadscore.lifecycle.changes import compare_scores


def _side(scorer, window: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    scored = scorer.score(window)
    return scored, scorer.contributions_frame(window), scored["reasons"].tolist()


def what_changed(champion, challenger, window: pd.DataFrame, *, champion_info: dict,
                 challenger_info: dict, n_movers: int = 5, seed: int = 0,
                 max_rows: int = 50_000) -> dict:
    """reports/changes.json for `champion` and `challenger` (scorers) on `window` (at most
    `max_rows` rows, a seeded sample: the migration matrix is a count, the sample keeps it
    fast)."""
    if len(window) > max_rows:
        window = window.sample(max_rows, random_state=seed)
    window = window.reset_index(drop=True)
    old, new = _side(champion, window), _side(challenger, window)
    labels = {**{k: champion.item_label(k) for k in old[1].columns},
              **{k: challenger.item_label(k) for k in new[1].columns}}
    return compare_scores(window["lead_id"], old[0], new[0], old[1], new[1], labels=labels,
                          champion_info=champion_info, challenger_info=challenger_info,
                          champion_reasons=old[2], challenger_reasons=new[2],
                          n_movers=n_movers, seed=seed)
