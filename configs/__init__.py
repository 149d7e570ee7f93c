"""The graph configs that ship with voiceflow, read through ``voiceflow.graph.find_config``."""
