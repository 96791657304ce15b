"""ALOE inside lm-evaluation-harness.

lm-eval 0.4.13 builds every request before it calls the model, so it cannot hold a conversation.
The ALOE tasks (tasks/aloe/*.yaml) therefore give lm-eval one `generate_until` request per persona
whose context carries the persona and the task's settings (`requests`); a wrapper around the model
class's `generate_until` (`intercept`) takes those requests out and runs the conversations in the
ALOE engine, with the lm-eval model as the model under test (`engine`); the "generated text" lm-eval
receives is the whole scored transcript, which the task's hooks (`task`) turn into metrics.
"""
