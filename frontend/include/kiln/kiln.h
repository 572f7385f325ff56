// kiln: Chainer's define-by-run API in C++, traced to MLIR and compiled.
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
#include "kiln/gradient_check.h"
#include "kiln/datasets.h"
#include "kiln/training.h"
#include "kiln/function_node.h"
