from voiceflow_shout import Shout

from voiceflow.messages import Answer
from voiceflow.testing import run_node, transcript


def test_shout_upper_cases_and_adds_suffix():
    out = run_node(Shout, transcript("hello there"), params={"suffix": "?!"})
    assert out == [Answer(text="HELLO THERE?!", language="en")]
