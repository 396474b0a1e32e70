"""Which runs a claim's spec names: a runs-table column against a value from a paper file. Values
compare as numbers when both are numeric (`keep: 1` matches 1.0), else as text; a spec value is a
value, a list (any of them), `{not: [...]}` (none of them) or `{min, max}` (a numeric range)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def equal(col: pd.Series, value) -> pd.Series:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and pd.api.types.is_numeric_dtype(col):
        return pd.Series(np.isclose(col.astype(float), float(value)), index=col.index)
    return col.astype(str) == str(value)


def any_of(col: pd.Series, values: list) -> pd.Series:
    mask = pd.Series(False, index=col.index)
    for value in values:
        mask |= equal(col, value)
    return mask


def matches(df: pd.DataFrame, values: dict) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    for axis, value in values.items():
        col = df[axis]
        if isinstance(value, dict) and "not" in value:
            mask &= ~any_of(col, value["not"])
        elif isinstance(value, dict):
            num = pd.to_numeric(col, errors="coerce")
            mask &= (num >= value.get("min", -math.inf)) & (num <= value.get("max", math.inf))
        elif isinstance(value, list):
            mask &= any_of(col, value)
        else:
            mask &= equal(col, value)
    return mask
