"""What several test folders share: starting servers (serverproc), talking the wire
protocol (wire), run folders for the report tests (report_frames), a local Dask cluster
(cluster), the fault suite's runs, attacks and summary (faults, faults_attack,
faults_summary), the browser check (browser), a server of one's own (byo_server), and the
session-end leftover tracker conftest.py uses (leftovers)."""
