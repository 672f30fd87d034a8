#include "http/parser.h"
#include "controller/engine.h"
