mod optimizers;
