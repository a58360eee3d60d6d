"""Log lines and metrics, for every process (web workers, the refresher, the CLI); imports nothing of ours."""
