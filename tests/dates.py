"""Test days inside Cost Explorer's daily history, whatever day the tests run on.

The date partitions start where that history starts (the 1st, 13 months back), so a fixed date
in a test would leave the partitions a few months after it was written.
"""

from __future__ import annotations

import datetime as dt

from finops_pipeline.sync.windows import first_of_month

TODAY = dt.datetime.now(dt.UTC).date()
#: The 1st of the month three months back: 89 or more complete days follow it, all inside the
#: history.
RECENT_START = first_of_month(TODAY, 3)
