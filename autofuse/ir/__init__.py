"""The autofuse IR: what every front end produces and every later stage reads."""
from autofuse.ir.graph import Dim, Graph, Node, TensorType

__all__ = ["Dim", "Graph", "Node", "TensorType"]
