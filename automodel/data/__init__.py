"""Data: sources (builtin, synthetic, files), splits, the JSON preprocessor, streamed files."""

from automodel.data._dataset import Dataset, infer_task, load_dataset
from automodel.data._files import FileSet, read_files, resolve_files
from automodel.data._preprocess import Column, Preprocessor
from automodel.data._sources import BUILTINS, RawTable, load_table
from automodel.data._stream import StreamSource, stream_files

__all__ = [
    "BUILTINS",
    "Column",
    "Dataset",
    "FileSet",
    "Preprocessor",
    "RawTable",
    "StreamSource",
    "infer_task",
    "load_dataset",
    "load_table",
    "read_files",
    "resolve_files",
    "stream_files",
]
