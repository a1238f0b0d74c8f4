"""The bench: sweep every server model over connection counts and scenarios, record
latency and CPU, store tidy results, draw charts and write a report (DESIGN §2, §3).

Measuring (matrix, runner, sampling, meta), storing (store) and drawing/reporting
(summary, plots, report, compare) are kept apart; everything after measuring reads
only the stored run folder.
"""

from pathlib import Path

# the checkout (or the installed tree) this package lives in: results/, build/, notebooks/
PROJECT_ROOT = Path(__file__).resolve().parent.parent
