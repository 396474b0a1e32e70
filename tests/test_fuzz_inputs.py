"""Fuzzing the two entry points for a user's input (issue #17): random mutations of the shipped
config and of a valid npz dataset file. Each mutation is either accepted or refused with ONE line
(ConfigError / ValueError); any other exception, or a message over several lines, fails. The
number of mutations is fixed (`max_examples`, derandomised so CI is repeatable); the README says
how many were tried."""

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kdprune.data.images import load_dataset
from kdprune.data.npz import check_npz
from kdprune.plan.config import ROOT, ConfigError, load_yaml, resolve

CONFIG_MUTATIONS = 150
NPZ_MUTATIONS = 300
BASE = load_yaml(ROOT / "config.yaml")

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(-2, 5), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(0, 3), max_size=2),
)


def paths(node, prefix=()):
    """Every (path to a key) of a nested mapping, lists indexed."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from paths(value, (*prefix, key))


PATHS = list(paths(BASE))


@settings(max_examples=CONFIG_MUTATIONS, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(where=st.sampled_from(PATHS), value=values, drop=st.booleans())
def test_a_mutated_config_is_accepted_or_refused_with_one_line(where, value, drop):
    cfg = copy.deepcopy(BASE)
    node = cfg
    for key in where[:-1]:
        node = node[key]
    if drop and isinstance(node, dict):
        del node[where[-1]]
    else:
        node[where[-1]] = value
    try:
        resolve(cfg, None, ROOT)
    except ConfigError as err:
        assert str(err) and "\n" not in str(err), repr(str(err))


def valid_arrays() -> dict:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 255, (9, 8, 8, 3), dtype=np.uint8),
        "y_train": np.arange(9) % 3,
        "x_test": rng.integers(0, 255, (3, 8, 8, 3), dtype=np.uint8),
        "y_test": np.arange(3) % 3,
        "classes": np.array(["a", "b", "c"]),
    }


array_changes = st.one_of(
    st.tuples(st.just("drop")),
    st.tuples(st.just("dtype"), st.sampled_from(["float32", "int8", "int64", "uint16", "bool", "U2"])),
    st.tuples(st.just("length"), st.integers(0, 12)),
    st.tuples(st.just("ndim"), st.integers(0, 5)),
    st.tuples(st.just("value"), st.integers(-3, 300)),
)


def mutate(arrays: dict, key: str, change: tuple) -> dict:
    arrays = dict(arrays)
    kind, *arg = change
    a = arrays[key]
    if kind == "drop":
        del arrays[key]
    elif kind == "dtype" and not (a.dtype.kind == "U" and arg[0] != "U2"):  # names do not convert to numbers
        arrays[key] = a.astype(arg[0])
    elif kind == "length":
        arrays[key] = np.resize(a, (arg[0], *a.shape[1:]))
    elif kind == "ndim":
        arrays[key] = a.reshape(-1)[: a.size].reshape((a.size,) + (1,) * max(0, arg[0] - 1)) if arg[0] else np.array(a.reshape(-1)[0])
    elif kind == "value" and a.size and a.dtype.kind in "iu":
        arrays[key] = a.copy()
        arrays[key].reshape(-1)[0] = np.clip(arg[0], np.iinfo(a.dtype).min, np.iinfo(a.dtype).max)
    return arrays


@settings(max_examples=NPZ_MUTATIONS, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=st.sampled_from(sorted(valid_arrays())), change=array_changes, cut=st.one_of(st.none(), st.integers(0, 2000)))
def test_a_mutated_npz_is_accepted_or_refused_with_one_line(tmp_path_factory, key, change, cut):
    path = tmp_path_factory.mktemp("npz") / "data.npz"
    np.savez(path, **mutate(valid_arrays(), key, change))
    if cut is not None:  # a truncated file
        path.write_bytes(path.read_bytes()[:cut])
    try:
        check_npz(str(path))
    except ValueError as err:
        assert str(err).startswith(f"dataset npz:{path}: ") and "\n" not in str(err), repr(str(err))
        return
    try:  # accepted: it loads, and its labels fit its classes (or one line, e.g. images too small to crop)
        data = load_dataset(f"npz:{path}")
    except ValueError as err:
        assert "\n" not in str(err), repr(str(err))
        return
    assert len(data.y_train) == len(data.x_train) and int(data.y_train.max()) < data.num_classes


@pytest.mark.parametrize(
    "where,value,line",
    [
        (("papers", 0), None, "config: papers: None is not allowed: a paper id (e.g. P1) or the path of a paper file"),
        (("papers",), True, "config: papers = True is not allowed: a non-empty list of paper ids"),
        (("presets", "paper"), True, "config: presets.paper = True is not allowed: a mapping of the keys it overrides (or nothing)"),
    ],
)
def test_what_the_config_fuzzer_found(where, value, line):
    """Mutations that raised a traceback before (TypeError / AttributeError while the paper files
    were read, before the schema check): now one line each."""
    cfg = copy.deepcopy(BASE)
    node = cfg
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    with pytest.raises(ConfigError) as err:
        resolve(cfg, None, ROOT)
    assert str(err.value).startswith(line) and "\n" not in str(err.value)
