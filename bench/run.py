"""`make bench`: every benchmark in bench/, each appending its table to BENCHMARKS.md."""

from . import refresh

if __name__ == "__main__":
    refresh.main([])
