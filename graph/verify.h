// The IR verifier: checks a Graph against the rules of the MatMul IR (ir.h, op_kind.h) and
// reports the first violation, naming the node (name, id, kind), the values and the shapes. The
// pass manager runs it after every pass in debug builds (pass.h).
//
// Rules, in the order they are checked:
//   names     values, nodes and sites have unique, non-empty names; ids equal table positions
//   sites     kind known, 0 <= rate < 1, width (row, channel, Bernoulli) or tile shape (tile) >= 1,
//             the current pattern (if any) fits the site (CheckSitePattern)
//   values    dtype float32 or int32 (labels int32); planned >= 0; live has the planned rank and
//             0 <= live <= planned on every axis; packed axes name row or channel sites, exist, are
//             distinct and have planned extent = site width * group; when the live shapes are
//             current, live = planned except along packed axes, which hold the kept count; a
//             view has its base's dtype and leafness, offset and strides >= 0, one stride per axis
//             (or none) and stays inside its storage root's planned buffer
//   nodes     kind and phase known; operand ids in range; arity per kind; the attribute is the
//             kind's alternative and well-formed (geometry, ChannelSet, Bernoulli site and rate);
//             beta and base input agree (BaseInput); int32 exactly at the kind's label / index /
//             argmax operands; operands marked like_output and the base have the output's dtype,
//             planned shape and packing
//   site uses site exists and its kind fits the target; the kind accepts the target; one use per
//             target; group >= 1; scale only on MatMuls; the target's dense extent = width * group;
//             the operand axes the uses pack are exactly the axes the values say are packed
//   MatMul    planned shapes follow the dense GEMM rule for the transposes (and any selection's
//             extent); when attributes and live shapes are both current, live shapes follow the
//             full rule with the selections and layouts (CheckMatMulShapes); an implicit
//             convolution (MatMulAttr::conv) has the NCHW and weight shapes of its role
//   LSTM      LstmGates / LstmGatesBackward: the gate matrices (preact, gates, dpreact) are
//             [B, 4H], every other operand [B, H]
//   dataflow  no value produced twice; leaf values (inputs, labels, parameters, optimizer state)
//             never produced, every other value produced, viewed (reading view) or assembled from
//             writing views; Value::producer agrees; every input is available (Graph::
//             CheckTopologicalOrder); no forward node reads a backward value
#pragma once

#include "framework/status.h"
#include "framework/tensor.h"
#include "graph/ir.h"
#include "ops/matmul/matmul.h"

namespace sieve::graph {

/// OK when `graph` satisfies every rule above; otherwise the first violation.
Status Verify(const Graph& graph);

/// The shape rule of ops::MakeMatMulArgs on shapes alone: A, B and C are 2-D; each dimension's
/// operands agree on its dense extent (a selection's extent when it has one), except operands
/// that store it Packed, which hold its kept count; selections and tiles are well-formed and a
/// tiled dimension carries no selection. An implicit convolution (attr.conv) instead has the
/// operand shapes of its role (ops/matmul/matmul.h: W [Cout, Cin*kh*kw], NCHW x, y, dy, dx of one
/// batch), no transposes or tile, and a selection only on the im2col dimension, Full in every
/// operand and keeping whole kh*kw blocks. The error names the three shapes and the dimension.
Status CheckMatMulShapes(const ops::MatMulAttr& attr, const Shape& a, const Shape& b, const Shape& c);

}  // namespace sieve::graph
