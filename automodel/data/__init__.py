"""Data: sources, splits and the JSON preprocessor."""

from automodel.data._dataset import Dataset, infer_task, load_dataset
from automodel.data._preprocess import Column, Preprocessor
from automodel.data._sources import BUILTINS, RawTable, load_table

__all__ = ["BUILTINS", "Column", "Dataset", "Preprocessor", "RawTable", "infer_task", "load_dataset", "load_table"]
