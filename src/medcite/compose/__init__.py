"""Composition: the evidence an answer reads, its candidate statements in context, and the composers.

``evidence`` gathers ranked passages and their documents' other passages; ``features`` scores candidate
statements; ``extractive`` chooses the bottom line and sections (quoted statements in context); ``abstain``
judges whether the library covers the question; ``checks`` numbers references and proves citations;
``llm`` writes prose with a language model and verifies it. Imports ``models``, ``errors``, ``intent``,
``quote``, ``retrieve``, ``llm`` and ``verify``; never ``answer``, ``render``, ``web`` or ``cli``.
"""
