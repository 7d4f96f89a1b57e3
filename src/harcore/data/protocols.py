"""Subject-wise evaluation protocols. Windows are never split at random: every split is a set of
subjects, and all windows of a subject go to the same split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PROTOCOLS = ("fixed", "random-subjects", "loso")


@dataclass(frozen=True)
class SubjectSplit:
    protocol: str
    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]
    fold: int | None = None
    seed: int | None = None

    def to_dict(self) -> dict:
        return {"protocol": self.protocol, "train": list(self.train), "val": list(self.val),
                "test": list(self.test), "fold": self.fold, "seed": self.seed}


def _pick_val(train: list[int], val_subjects, val_fraction, seed: int) -> tuple[list[int], list[int]]:
    if val_subjects is not None and val_fraction is not None:
        raise ValueError("give either val_subjects or val_fraction, not both")
    if val_subjects is not None:
        val = sorted(int(s) for s in val_subjects)
        bad = [s for s in val if s not in train]
        if bad:
            raise ValueError(f"val_subjects {bad} are not training subjects of this protocol (training: {train})")
        if len(set(val)) == len(train):
            raise ValueError("val_subjects would leave no training subject")
        return [s for s in train if s not in val], val
    if val_fraction is not None:
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        n_val = max(1, int(round(val_fraction * len(train))))
        if n_val >= len(train):
            raise ValueError(f"val_fraction {val_fraction} of {len(train)} training subjects leaves none for training")
        rng = np.random.default_rng(seed)
        val = sorted(int(s) for s in rng.choice(np.asarray(train), size=n_val, replace=False))
        return [s for s in train if s not in val], val
    return train, []


def split_subjects(subjects, protocol: str = "fixed", *, test_subjects=None, fold: int | None = None,
                   seed: int = 0, fractions=(0.6, 0.2, 0.2), val_subjects=None,
                   val_fraction: float | None = None) -> SubjectSplit:
    """Assign subjects to train / val / test.

    * ``"fixed"``: the dataset's own split (``test_subjects``); validation is optional, either the
      listed ``val_subjects`` or a seeded ``val_fraction`` of the training subjects.
    * ``"random-subjects"``: a seeded permutation of the subjects cut by ``fractions``
      ``(train, val, test)`` (rounded; at least one subject in train and test, and in val when its
      fraction is positive).
    * ``"loso"``: leave-one-subject-out; ``fold`` k (0-based) tests the k-th subject in ascending
      id order. Optional validation as for ``"fixed"``.
    """
    subj = sorted({int(s) for s in np.asarray(subjects).ravel()})
    if not subj:
        raise ValueError("no subjects")
    if protocol == "fixed":
        if test_subjects is None:
            raise ValueError("this dataset has no fixed train/test split; use protocol='random-subjects' or 'loso'")
        test = sorted(int(s) for s in test_subjects if int(s) in subj)
        if not test:
            raise ValueError(f"none of the fixed test subjects {sorted(test_subjects)} is present in the loaded data")
        train = [s for s in subj if s not in test]
        if not train:
            raise ValueError("the fixed split leaves no training subject in the loaded data")
        train, val = _pick_val(train, val_subjects, val_fraction, seed)
        return SubjectSplit("fixed", tuple(train), tuple(val), tuple(test), None, seed if val_fraction else None)
    if protocol == "random-subjects":
        if val_subjects is not None or val_fraction is not None:
            raise ValueError("random-subjects takes its validation share from fractions=(train, val, test)")
        f = np.asarray(fractions, dtype=np.float64)
        if f.shape != (3,) or (f < 0).any() or not np.isclose(f.sum(), 1.0):
            raise ValueError(f"fractions must be three non-negative numbers (train, val, test) summing to 1, got {fractions}")
        if f[0] == 0 or f[2] == 0:
            raise ValueError("fractions need a positive train and test share")
        n = len(subj)
        n_test = max(1, int(round(f[2] * n)))
        n_val = max(1, int(round(f[1] * n))) if f[1] > 0 else 0
        if n_test + n_val >= n:
            raise ValueError(f"{n} subjects are too few for fractions {tuple(fractions)}")
        perm = [int(s) for s in np.random.default_rng(seed).permutation(np.asarray(subj))]
        test = sorted(perm[:n_test])
        val = sorted(perm[n_test:n_test + n_val])
        train = sorted(perm[n_test + n_val:])
        return SubjectSplit("random-subjects", tuple(train), tuple(val), tuple(test), None, seed)
    if protocol == "loso":
        if fold is None:
            raise ValueError(f"protocol='loso' needs fold=k with 0 <= k < {len(subj)} (one fold per subject)")
        if int(fold) != fold or not 0 <= fold < len(subj):
            raise ValueError(f"fold must be an integer in [0, {len(subj)}), got {fold}")
        test = [subj[int(fold)]]
        train = [s for s in subj if s not in test]
        if not train:
            raise ValueError("loso needs at least two subjects")
        train, val = _pick_val(train, val_subjects, val_fraction, seed)
        return SubjectSplit("loso", tuple(train), tuple(val), tuple(test), int(fold), seed if val_fraction else None)
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")
