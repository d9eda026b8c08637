"""L1 pure text: utterances, speakable text, sentence split, text gates, JSON answers, the
tokenizer.
"""
