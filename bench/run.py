"""`make bench`: every benchmark in bench/, each appending its table to BENCHMARKS.md."""

from . import http, refresh

if __name__ == "__main__":
    refresh.main([])
    http.main([])
