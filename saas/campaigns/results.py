"""Did the campaign work? Response rate and revenue per member, target against control.

Uplift of the response rate is the difference of two proportions with a normal-approximation
95% interval (Wald): diff ± 1.96·sqrt(p1(1−p1)/n1 + p0(1−p0)/n0). Revenue per member uses
Welch's standard error from each group's mean and variance. Both are honest only with enough
members in each group; below 30 per group the page says so instead of pretending.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054
MIN_GROUP = 30


@dataclass
class GroupStats:
    members: int
    responders: int
    revenue: float
    revenue_sq: float

    @property
    def rate(self) -> float:
        return self.responders / self.members if self.members else 0.0

    @property
    def revenue_mean(self) -> float:
        return self.revenue / self.members if self.members else 0.0

    @property
    def revenue_var(self) -> float:
        if self.members < 2:
            return 0.0
        mean = self.revenue_mean
        return max((self.revenue_sq - self.members * mean * mean) / (self.members - 1), 0.0)


@dataclass
class Uplift:
    value: float
    low: float
    high: float
    enough_data: bool


def rate_uplift(target: GroupStats, control: GroupStats) -> Uplift:
    diff = target.rate - control.rate
    if not target.members or not control.members:
        return Uplift(diff, math.nan, math.nan, False)
    se = math.sqrt(target.rate * (1 - target.rate) / target.members
                   + control.rate * (1 - control.rate) / control.members)
    return Uplift(diff, diff - Z95 * se, diff + Z95 * se,
                  min(target.members, control.members) >= MIN_GROUP)


def revenue_uplift(target: GroupStats, control: GroupStats) -> Uplift:
    diff = target.revenue_mean - control.revenue_mean
    if not target.members or not control.members:
        return Uplift(diff, math.nan, math.nan, False)
    se = math.sqrt(target.revenue_var / target.members + control.revenue_var / control.members)
    return Uplift(diff, diff - Z95 * se, diff + Z95 * se, min(target.members, control.members) >= MIN_GROUP)
