mod layers_core;
