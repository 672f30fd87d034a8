#include "controller/engine.h"
#include "platform/platform.h"
#include "router/router.h"
#include "http/parser.h"
