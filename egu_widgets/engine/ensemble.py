"""Ensembles of EGU-Net: K members trained from one seed, their mean abundances and their spread.

``EGUNet(..., ensemble=K).fit(cube)`` (and ``unmix(cube, method="egu-pw", ensemble=K)``) lands in
:func:`fit_ensemble`. Each member is the same estimator with its own seed, drawn from the user's
seed through the ``"members"`` stream (:func:`member_seeds`), so an ensemble is reproducible from
one number. A member builds its own bundles from its seed unless a bundle set is given (a curated
one, say), in which case all members train on it.

Members do not agree on the order of their materials: before anything is averaged, each member's
endmembers are matched to the first member's by the least total spectral angle (Hungarian,
:func:`egu_widgets.metrics.align`). No ground truth is read for that.

The result holds the mean abundances as ``abundances`` and, per pixel and material, the spread
across members: ``abundances_std`` (sample standard deviation), ``abundances_q05`` and
``abundances_q95`` (the 5 % and 95 % quantiles, a 90 % interval), all ``(endmember, y, x)``, plus
every member's maps as ``abundances_members(member, endmember, y, x)``. How well the spread tracks
the error is measured in docs/uncertainty.md.

Members train in separate processes (spawn start method, one torch thread each) when several CPUs
are free, otherwise one after another in this process; with one torch thread each, both give the
same numbers. A script that trains an ensemble in processes must keep its top-level code under
``if __name__ == "__main__":`` (spawned workers import the main module).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from .. import metrics
from ..cube import HyperCube
from ..errors import InputError
from ..results import UnmixingResult
from ..validation import check_int, seed_sequence
from .bundles import SpectralBundles
from .events import CallbackLike, TrainingControl

#: What this module gets as ``est``: an :class:`~egu_widgets.engine.EGUNet` (the estimator imports
#: this module, so this module does not import it; members are built as ``type(est)(**params)``).
EGUNet = Any

__all__ = ["QUANTILES", "ensemble_statistics", "ensemble_transform", "fit_ensemble", "member_seeds", "member_workers"]

#: The quantiles of the members' abundances stored as the interval (a 90 % interval).
QUANTILES = (0.05, 0.95)


def member_seeds(seed: int, n_members: int) -> list[int]:
    """The seeds of ``n_members`` members: one draw each from the ``"members"`` stream of ``seed``.

    The same seed always gives the same list, and the first k seeds of a larger ensemble are those
    of the smaller one, so adding members keeps the ones trained already.
    """
    n = check_int("ensemble", n_members, 1)
    children = seed_sequence(seed, "members").spawn(n)
    return [int(child.generate_state(1, np.uint32)[0]) for child in children]


def member_workers(n_members: int, device: Any = "cpu", requested: int | None = None) -> int:
    """How many processes train members at once: ``requested``, else one per free CPU, at most K.

    A GPU run trains one member at a time (the members would only queue on one device).
    """
    if requested is not None:
        return max(1, min(check_int("n_jobs", requested, 1), n_members))
    if str(device).startswith("cuda"):
        return 1
    from .threads import policy_threads, read_cpu_budget

    budget = read_cpu_budget()
    return max(1, min(n_members, policy_threads(budget, budget.usable)))


def _fit_member(cls: type, params: dict, cube: HyperCube, bundles: Any) -> EGUNet:
    """Train one member (run in a worker process or in this one); returns the fitted estimator."""
    return cls(**params).fit(cube, bundles=bundles)


def ensemble_statistics(stack: np.ndarray, quantiles: Sequence[float] = QUANTILES) -> dict[str, np.ndarray]:
    """Mean, sample standard deviation and quantiles over the first axis of ``stack`` (K, ...).

    One member has a spread of zero (its interval is the member itself).
    """
    stack = np.asarray(stack, dtype=np.float64)
    k = stack.shape[0]
    std = stack.std(axis=0, ddof=1) if k > 1 else np.zeros(stack.shape[1:])
    low, high = np.quantile(stack, quantiles, axis=0)
    return {"mean": stack.mean(axis=0), "std": std, "q05": low, "q95": high}


def _align_members(members: list[EGUNet]) -> list[np.ndarray]:
    """Per member, ``perm`` such that ``member.endmembers_[perm]`` lines up with the first member's."""
    first = members[0].endmembers_
    return [metrics.align(est_endmembers=m.endmembers_, true_endmembers=first) for m in members]


def ensemble_transform(est: EGUNet, cube: HyperCube, stream: str = "endmember") -> np.ndarray:
    """The members' aligned mean abundances of ``cube``'s pixels, (N, P) float64."""
    members, perms = est.members_, est.member_permutations_
    return np.mean([m.transform(cube, stream)[:, perm] for m, perm in zip(members, perms)], axis=0)


def _train_members(
    cls: type,
    params: list[dict],
    cube: HyperCube,
    bundles: Any,
    workers: int,
    callbacks: Sequence[CallbackLike] | None,
    control: TrainingControl | None,
) -> list[EGUNet]:
    if workers > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [pool.submit(_fit_member, cls, p, cube, bundles) for p in params]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    members = []
    for p in params:
        if members and control is not None and control.stop_requested:
            break  # the members trained so far make the (partial) ensemble
        members.append(cls(**p).fit(cube, bundles=bundles, callbacks=callbacks, control=control))
    return members


def fit_ensemble(
    est: EGUNet,
    cube: HyperCube,
    bundles: Any = None,
    callbacks: Sequence[CallbackLike] | None = None,
    control: TrainingControl | None = None,
    *,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Train ``est.ensemble`` members of ``est`` on ``cube`` and make ``est`` their ensemble.

    Parameters
    ----------
    est : EGUNet
        The estimator; its parameters (all but ``seed``, ``ensemble`` and ``progress``) are each
        member's. ``num_threads`` None gives every member one torch thread.
    cube : HyperCube
        The training cube.
    bundles : optional
        As in :meth:`EGUNet.fit`; a :class:`SpectralBundles` given here (or as ``est.bundles``) is
        shared by every member, otherwise each member builds its own from its seed.
    callbacks, control : optional
        Passed to each member in turn; either one makes the members train one after another in
        this process (events do not cross processes). A stop request ends the current member and
        trains no further ones.
    n_jobs : int, optional
        Processes training members at once (None: :func:`member_workers`).

    Returns
    -------
    ndarray
        The mean abundances (N, P) float64. ``est`` then holds ``members_`` (the fitted members),
        ``member_seeds_``, ``member_permutations_`` (each member's order matched to the first's)
        and ``result_`` (mean, spread and members' maps; see the module doc).
    """
    k = check_int("ensemble", est.ensemble, 1)
    p = est._resolve(cube)
    start = time.perf_counter()
    if bundles is None and isinstance(est.bundles, SpectralBundles):
        bundles = est.bundles
    seeds = member_seeds(est.seed_, k)
    base = est.get_params(deep=False)
    base.update(ensemble=None, progress=False, n_endmembers=p)
    if base["num_threads"] is None:
        base["num_threads"] = 1
    params = [dict(base, seed=s) for s in seeds]
    sequential = callbacks is not None or control is not None
    workers = 1 if sequential else member_workers(k, est.device_, n_jobs)
    members = _train_members(type(est), params, cube, bundles, workers, callbacks, control)

    perms = _align_members(members)
    stack = np.stack([m.transform(cube)[:, perm] for m, perm in zip(members, perms)])  # (K, N, P)
    spectra = np.stack([m.endmembers_[perm] for m, perm in zip(members, perms)])
    stats = ensemble_statistics(stack)
    shared = bundles if isinstance(bundles, SpectralBundles) else None

    est.model_ = None  # an ensemble has no single network: members_ holds them
    est.members_, est.member_seeds_, est.member_permutations_ = members, seeds[: len(members)], perms
    est.bundles_ = shared
    est.outcome_ = None
    est.n_bands_, est.n_endmembers_ = cube.n_bands, p
    est.reference_ = spectra.mean(axis=0)
    # The members' first references, aligned and averaged as their endmembers are (the same
    # spectra unless a member relabelled; see engine/relabel.py).
    firsts = [getattr(m, "initial_reference_", None) for m in members]
    est.initial_reference_ = (
        est.reference_
        if any(f is None for f in firsts)
        else np.stack([f[perm] for f, perm in zip(firsts, perms)]).mean(axis=0)
    )

    outcomes = [m.outcome_ for m in members]
    partial = len(members) < k or any(o.partial for o in outcomes)
    reasons = sorted({o.stop_reason for o in outcomes if o.partial and o.stop_reason})
    if len(members) < k:
        reasons.insert(0, f"{len(members)} of {k} members trained")
    config = est.get_config()
    config.update(n_endmembers=p, n_bands=cube.n_bands)
    config["ensemble"] = dict(
        members=k,
        trained=len(members),
        seeds=est.member_seeds_,
        permutations=[[int(i) for i in perm] for perm in perms],
        workers=workers,
        quantiles=list(QUANTILES),
        training=[m.get_config().get("training", {}) for m in members],
    )
    if shared is None and members[0].bundles_ is not None:
        config["ensemble"]["bundles"] = [m.bundles_.config for m in members]
    est.result_ = ensemble_result(
        cube,
        stats,
        stack,
        est.reference_,
        method=est.method,
        config=config,
        seconds=time.perf_counter() - start,
        partial=partial,
        stop_reason="; ".join(reasons),
        seeds=est.member_seeds_,
    )
    return stats["mean"]


def ensemble_result(
    cube: HyperCube,
    stats: dict[str, np.ndarray],
    stack: np.ndarray,
    endmembers: np.ndarray | None,
    *,
    method: str,
    config: dict,
    seconds: float,
    partial: bool = False,
    stop_reason: str = "",
    seeds: Sequence[int] | None = None,
) -> UnmixingResult:
    """The result of an ensemble: the mean as ``abundances``, the spread and members' maps beside it.

    ``stats`` holds (N, P) arrays "mean", "std", "q05", "q95" and ``stack`` the members' (K, N, P)
    aligned abundances, in cube pixel order. With truth on the cube every variable is reordered
    to the truth's materials together (the scores are the mean's).
    """
    h, w, _ = cube.shape
    if stack.ndim != 3 or stack.shape[1] != h * w:
        raise InputError(f"member abundances must be (K, {h * w}, P); got {stack.shape}")
    base = UnmixingResult.from_arrays(
        cube,
        stats["mean"],
        endmembers,
        method=method,
        config=config,
        seconds=seconds,
        partial=partial,
        stop_reason=stop_reason,
        score=False,
    )
    invalid = ~cube.valid_mask
    p = stack.shape[2]

    def maps(pixels: np.ndarray, dtype=np.float64) -> np.ndarray:
        out = np.asarray(pixels, dtype=dtype).T.reshape(p, h, w).copy()
        out[:, invalid] = np.nan
        return out

    members = np.stack([maps(m, np.float32) for m in stack])
    ds = base.ds.assign(
        abundances_std=(("endmember", "y", "x"), maps(stats["std"])),
        abundances_q05=(("endmember", "y", "x"), maps(stats["q05"])),
        abundances_q95=(("endmember", "y", "x"), maps(stats["q95"])),
        abundances_members=(("member", "endmember", "y", "x"), members),
    )
    ds = ds.assign_coords(member=np.arange(stack.shape[0]))
    if seeds is not None:
        ds = ds.assign_coords(member_seed=("member", np.asarray(seeds, dtype=np.int64)))
    result = UnmixingResult(ds)
    if cube.true_abundances is not None:
        result = result.aligned_to(cube)
    return result
