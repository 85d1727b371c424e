"""The demo application: ``python -m agent_audio demo`` and ``python -m agent_audio serve``.

An application built on the library, not part of it: nothing in ``agent_audio`` imports
this package, and it uses only the library's public names. Modules:

* :mod:`~agent_audio.demo.cli`: the command line.
* :mod:`~agent_audio.demo.run`: the scripted three-turn conversation over a real aiortc
  peer connection (:mod:`~agent_audio.demo.loopback`), measured by
  :mod:`~agent_audio.demo.analysis` and :mod:`~agent_audio.demo.report`.
* :mod:`~agent_audio.demo.duplex` (``demo --barge-in``): the listener talks back on its
  own track (:mod:`~agent_audio.demo.user_voice`) and the agent's barge-in policy reacts,
  measured by :mod:`~agent_audio.demo.duplex_report`.
* :mod:`~agent_audio.demo.speech`: the bundled speech sample, user files, piper TTS;
  :mod:`~agent_audio.demo.words`: the words pushed with that speech (the bundled
  timings, piper's alignments), cut to turns and chunks; :mod:`~agent_audio.demo.heard`:
  the report's heard text per turn, its checks and the truncation payload.
* :mod:`~agent_audio.demo.server`, :mod:`~agent_audio.demo.session` and ``web/``: the
  demo page.
"""
