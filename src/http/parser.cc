#include "http/parser.h"
