"""L3 compaction: the compactor, its structured request, the facts extractor, the prompt
template and token shares, the offline fallback summary.
"""
