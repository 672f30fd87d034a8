#include <string>

#include "common/status.h"
// #include "controller/engine.h" is only a comment
#include "http/parser.h"
#include "router/router.h"
#include "controller/engine.h"
#include "platform/platform.h"
