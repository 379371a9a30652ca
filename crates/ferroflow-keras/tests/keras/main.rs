mod layers_conv;
