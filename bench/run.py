"""`make bench`: every benchmark in bench/, each appending its table to BENCHMARKS.md."""

from . import http, load, refresh

if __name__ == "__main__":
    refresh.main([])
    http.main([])
    load.main([])
