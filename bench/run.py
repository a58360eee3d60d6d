"""`make bench`: every benchmark in bench/, each appending its table to BENCHMARKS.md."""

from . import http, load, outage, profile, readmodel, refresh, stop, stream

if __name__ == "__main__":
    refresh.main([])
    profile.main([])
    http.main([])
    load.main([])
    readmodel.main([])
    stream.main([])
    stop.main([])
    outage.main([])
