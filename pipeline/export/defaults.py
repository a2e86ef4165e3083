"""Defaults of export that the CLI needs without loading Pillow, pandas or Jinja."""

DEFAULT_TEMPLATE = "{{ row_key }}-{{ step_id }}-{{ image_id[:8] }}-{{ width }}x{{ height }}.{{ ext }}"
