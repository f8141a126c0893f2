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
It is reported (``Member.suspicion``), never acted on here: a member is
down by ``service_down_time`` alone.

Considerations:

* Three numbers per member, updated once per change: no history kept.
* The deviation has a floor (``min_std``, a tenth of the mean by default)
  so that a perfectly regular member is not suspected after a few
  milliseconds of extra delay.
* Until two intervals have been seen there is no rhythm: None.
"""

from __future__ import annotations

import math

#: Weight of the newest interval in the running mean and variance.
WEIGHT = 0.1
#: Floor of the deviation, as a share of the mean interval.
MIN_STD_SHARE = 0.1
#: Suspicion reported when the probability underflows.
PHI_MAX = 100.0


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
    e = math.exp(-y * (1.5976 + 0.070566 * y * y))
    later = e / (1.0 + e) if silence > mean else 1.0 - 1.0 / (1.0 + e)
    if later <= 0.0:
        return PHI_MAX
    return min(PHI_MAX, -math.log10(later))
