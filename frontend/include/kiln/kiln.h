// kiln: Chainer's define-by-run API in C++, traced to MLIR and compiled.
//
// Threads. Separate models on separate threads are safe: each thread records
// and realizes its own variables (a variable belongs to the thread that last
// created or changed it), the compiled-graph cache is shared and locked,
// compiles are serialized (one MLIRContext) and compiled kernels run
// concurrently. The configuration (using_config, no_backprop_mode), the
// initializer and dropout seeds and the Reporter's current observation are per
// thread, as in Chainer. Not safe: one Variable, Link or Optimizer used by two
// threads at the same time (as with Chainer's objects); hand a model from one
// thread to another with a join or another synchronization in between.
#pragma once

#include "kiln/array.h"
#include "kiln/cache.h"
#include "kiln/config.h"
#include "kiln/error.h"
#include "kiln/functions.h"
#include "kiln/link.h"
#include "kiln/links.h"
#include "kiln/variable.h"
#include "kiln/optimizers.h"
#include "kiln/serializers.h"
#include "kiln/links_nn.h"
#include "kiln/functions_rnn.h"
#include "kiln/links_rnn.h"
#include "kiln/gradient_check.h"
#include "kiln/datasets.h"
#include "kiln/training.h"
#include "kiln/function_node.h"
#include "kiln/profile.h"
