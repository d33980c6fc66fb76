"""Helpers the tests share: real processes started on free ports and awaited on their own signals."""
