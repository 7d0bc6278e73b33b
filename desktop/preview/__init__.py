"""The live preview: frames from the render engine, the render's soundtrack, a transport."""

from .pane import PreviewPane

__all__ = ["PreviewPane"]
