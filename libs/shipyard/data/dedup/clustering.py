"""Pure numpy cores of ``reduce``: candidate pairs from equal keys, connected components, survivors.

Documents are numbered by a global id that follows (shard, position) order, so "the lowest id in a
cluster" is "the first occurrence" whatever the number of workers. Nothing here touches storage or
text; every function takes and returns arrays and is tested on its own.
"""

from __future__ import annotations

import numpy as np

__all__ = ["components", "duplicates_of_sorted_keys", "equal_key_edges", "non_representatives"]


def equal_key_edges(keys: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges ``(first, other)`` linking every id to the lowest id sharing its key.

    ``ids`` must be increasing; a stable sort on ``keys`` then keeps each run of equal keys in id order,
    so the run's first element is its lowest id. Only colliding documents produce edges.
    """
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    same = sk[1:] == sk[:-1]
    if not same.any():
        empty = np.empty(0, dtype=ids.dtype)
        return empty, empty
    starts = np.concatenate([[True], ~same])
    run_first = np.flatnonzero(starts)[np.cumsum(starts) - 1]
    members = np.flatnonzero(~starts)
    sid = ids[order]
    return sid[run_first[members]], sid[members]


def components(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of the graph with edges ``(u[i], v[i])``.

    Returns ``(nodes, label)``: the sorted distinct node ids and, for each, the lowest node id of its
    component. Vectorized min-label propagation with pointer jumping: each round is a few array passes
    over the edges, and the number of rounds grows with the log of a component's diameter.
    """
    nodes = np.unique(np.concatenate([u, v]))
    if nodes.size == 0:
        return nodes, nodes
    cu = np.searchsorted(nodes, u)
    cv = np.searchsorted(nodes, v)
    label = np.arange(nodes.size)
    while True:
        m = np.minimum(label[cu], label[cv])
        new = label.copy()
        np.minimum.at(new, cu, m)
        np.minimum.at(new, cv, m)
        # Pointer jumping: follow labels to their fixed point so long chains collapse quickly.
        while True:
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, label):
            return nodes, nodes[label]
        label = new


def non_representatives(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Sorted ids to remove: every clustered id except the lowest of its cluster."""
    nodes, label = components(u, v)
    return nodes[label != nodes]


def duplicates_of_sorted_keys(keys: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Mask of entries whose key first occurred under a *different, earlier* owner.

    ``keys``/``owner`` must already be sorted by ``(key, owner)``; repeats inside the owner that has the
    first occurrence are kept (a document repeating its own sentence is not a cross-document duplicate).
    """
    if keys.size == 0:
        return np.zeros(0, dtype=bool)
    starts = np.concatenate([[True], keys[1:] != keys[:-1]])
    first_owner = owner[np.flatnonzero(starts)[np.cumsum(starts) - 1]]
    return owner != first_owner
