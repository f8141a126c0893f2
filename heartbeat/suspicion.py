"""Phi-accrual suspicion: how unusual a member's silence is (pure).

Next to the fixed rule of :mod:`heartbeat.liveness` (down after
``service_down_time`` without a change), an observer can say how
suspicious the current silence is given the member's own rhythm, as the
phi-accrual failure detector does (Hayashibara et al., 2004; used by
Cassandra and Akka).  The inter-arrival times of the member's changes,
seen on the observer's clock, are summarised by an exponentially weighted
mean and variance; the silence ``t`` since the last change then has

    phi(t) = -log10(P(an interval longer than t))

under a normal distribution of that mean and deviation: 1 means a 10 %
chance that the member is merely slow, 3 a 0.1 % chance, 8 one in 10^8.
It is reported (``Member.suspicion``).  Down is by ``service_down_time``
alone unless the operator opts in with ``[heartbeat] phi_threshold``: then
a member is also down once phi reaches the threshold, at the silence
:func:`silence_at` gives (see :func:`down_after`).

Considerations:

* Three numbers per member, updated once per change: no history kept.
* The deviation has a floor (``min_std``, a tenth of the mean by default)
  so that a perfectly regular member is not suspected after a few
  milliseconds of extra delay.
* Until two intervals have been seen there is no rhythm: None.
* phi grows with the silence alone once the rhythm is fixed, and the
  rhythm changes only with a change, so the silence at which phi reaches
  a threshold is a fixed deadline between two changes: ``mean + y * std``
  where ``y`` depends on the threshold only (the real root of the cubic
  of the logistic approximation below), computed once.
"""

from __future__ import annotations

import math

#: Weight of the newest interval in the running mean and variance.
WEIGHT = 0.1
#: Floor of the deviation, as a share of the mean interval.
MIN_STD_SHARE = 0.1
#: Suspicion reported when the probability underflows.
PHI_MAX = 100.0
#: Coefficients of the logistic approximation of the normal tail.
_A = 1.5976
_B = 0.070566


Rhythm = tuple[float, float, int]
#: No interval seen yet: (mean, variance, intervals seen).
NO_RHYTHM: Rhythm = (0.0, 0.0, 0)


def add(rhythm: Rhythm, interval: float) -> Rhythm:
    """``rhythm`` with one more interval (seconds between two changes).

    A plain tuple, so that an observer of many members keeps three
    numbers per member and no object.
    """
    mean, var, count = rhythm
    if interval < 0:
        return rhythm
    if not count:
        return interval, 0.0, 1
    delta = interval - mean
    return (mean + WEIGHT * delta,
            (1 - WEIGHT) * (var + WEIGHT * delta * delta), count + 1)


def phi(rhythm: Rhythm, silence: float) -> float | None:
    """The suspicion after ``silence`` seconds without a change."""
    mean, var, count = rhythm
    if count < 2 or mean <= 0:
        return None
    std = max(math.sqrt(var), MIN_STD_SHARE * mean)
    y = (silence - mean) / std
    # The logistic approximation of the normal tail (as Akka's detector
    # uses), in the form that does not overflow for large |y|.
    e = math.exp(-y * (_A + _B * y * y))
    later = e / (1.0 + e) if silence > mean else 1.0 - 1.0 / (1.0 + e)
    if later <= 0.0:
        return PHI_MAX
    return min(PHI_MAX, -math.log10(later))


def deviations(threshold: float) -> float:
    """How many deviations past the mean interval phi reaches ``threshold``.

    The positive root ``y`` of ``B y^3 + A y + ln(P / (1 - P)) = 0`` with
    ``P = 10^-threshold``: the logistic tail equals P there.  Cardano's
    formula, since the cubic has one real root (A, B > 0).
    """
    if threshold <= math.log10(2.0):
        raise ValueError('phi threshold must be above log10(2), got %r'
                         % threshold)
    later = 10.0 ** -threshold
    q = math.log(later / (1.0 - later)) / _B
    p = _A / _B
    root = math.sqrt(q * q / 4.0 + p ** 3 / 27.0)
    return math.cbrt(-q / 2.0 + root) + math.cbrt(-q / 2.0 - root)


def silence_at(rhythm: Rhythm, y: float) -> float | None:
    """Silence after which phi reaches the threshold of ``y`` deviations.

    None while there is no rhythm (then nothing is suspected).
    """
    mean, var, count = rhythm
    if count < 2 or mean <= 0:
        return None
    return mean + y * max(math.sqrt(var), MIN_STD_SHARE * mean)


def down_after(rhythm: Rhythm, down_time: float,
               y: float | None) -> float:
    """Silence after which a member of ``rhythm`` is DOWN.

    ``service_down_time``, or earlier where the operator opted in (``y``
    from :func:`deviations` of ``phi_threshold``) and the member's rhythm
    makes its silence that unusual sooner.
    """
    if y is None:
        return down_time
    at = silence_at(rhythm, y)
    return down_time if at is None else min(down_time, at)
