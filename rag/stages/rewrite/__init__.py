"""Query rewriting: several search queries per question, and nested questions split into hops.

The rewriter sits first in the pipeline. It follows two ideas from the literature:

* *Several queries per question* (ERM4's Query Rewriter+): the original question, its content
  words for the sparse index, and a declarative form ("X founded by") that reads like the
  sentence holding the answer, which suits dense retrieval.
* *Multi-hop decomposition* (MeLLo): a nested question ("Who is the mayor of the town where
  X was born?") becomes single hops answered one after another against memory ("Where was X
  born?", then "Who is the mayor of {answer}?"). Answering hop by hop lets an edited fact
  (X's new birthplace) propagate to the final answer, where one retrieval for the whole
  question would find the old chain.

:class:`RuleRewriter` does both from English surface form alone (see
:mod:`rag.stages.structure` for why no parser). :class:`GeneratorRewriter` asks a small
generator first and falls back to the rules whenever the generator's output is unusable.

The package keeps one module per concern: :mod:`~rag.stages.rewrite.records` (:class:`Hop`,
:class:`Rewrite` and the question checks), :mod:`~rag.stages.rewrite.grammar` (verb forms,
subjects and question word order), :mod:`~rag.stages.rewrite.rules` (keyword queries, the
declarative paraphrase and :class:`RuleRewriter`), :mod:`~rag.stages.rewrite.hops` (the
decomposition into hops and :func:`resolve_hop`), :mod:`~rag.stages.rewrite.generator`
(:class:`GeneratorRewriter` and the checks of its output) and
:mod:`~rag.stages.rewrite.compare` (comparison questions answered in code).
"""

from rag.stages.rewrite.compare import Comparison, compare, comparison
from rag.stages.rewrite.generator import GeneratorRewriter, parse_hops, parse_paraphrase
from rag.stages.rewrite.grammar import base_form
from rag.stages.rewrite.hops import decompose, resolve_hop
from rag.stages.rewrite.records import Hop, Rewrite
from rag.stages.rewrite.rules import RuleRewriter, keyword_query, paraphrase

__all__ = [
    "Comparison", "GeneratorRewriter", "Hop", "Rewrite", "RuleRewriter", "base_form", "compare",
    "comparison", "decompose", "keyword_query", "paraphrase", "parse_hops", "parse_paraphrase",
    "resolve_hop",
]
