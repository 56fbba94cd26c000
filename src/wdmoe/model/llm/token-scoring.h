// Scoring one next-token prediction from its logits: the negative log-likelihood of the true
// token, the argmax, and the KL divergence from a reference distribution.
#ifndef WDMOE_LLM_TOKEN_SCORING_H
#define WDMOE_LLM_TOKEN_SCORING_H

namespace wdmoe
{
namespace llm
{

/// Index of the largest logit (the lowest index on ties).
int ArgMax(const float* logits, int vocab);

/// -log softmax(logits)[target] in nats, computed stably: log(sum(exp(x))) - x[target].
double NegativeLogLikelihood(const float* logits, int vocab, int target);

/// KL(P || Q) in nats, P = softmax(reference), Q = softmax(other): sum_v P_v (log P_v - log Q_v)
/// (how much the other distribution loses against the reference, as llama.cpp's KL-divergence
/// statistic reads it). Zero for identical logits; never negative.
double KlDivergence(const float* reference, const float* other, int vocab);

} // namespace llm
} // namespace wdmoe

#endif
