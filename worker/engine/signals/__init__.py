"""Signal readers: each module reads one family of signals from prepared text with the lexicon."""
