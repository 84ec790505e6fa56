"""Explanations: exact contributions, reasons in words, global drivers, grades, example leads."""
